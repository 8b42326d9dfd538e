"""Stage 4, AWS: boto3 sessions and the live reads bgtool trusts before and during a release."""
