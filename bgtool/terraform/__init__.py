"""The Terraform runner: the real `terraform` binary, driven through its machine-readable UI."""
