"""Who holds an environment and what happened to it: the operation lock, the release history, the
store both live in (S3/DynamoDB or local files), and the provenance that ties a release to the
environment file and the commit it ran from."""
