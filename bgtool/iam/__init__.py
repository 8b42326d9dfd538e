"""IAM: least-privilege policies for the roles that run bgtool in a pipeline."""
