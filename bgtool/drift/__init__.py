"""Drift: what AWS serves against what Terraform state and the environment file say.

`model` and `diff` are pure (recorded `terraform show -json` documents and boto3 reads in, drift
items out), so the judgement is unit-tested without AWS; `collect` does the I/O (terraform, boto3,
threads) and only feeds them.
"""
