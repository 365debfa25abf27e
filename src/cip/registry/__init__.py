"""Registry access: the Distribution API over HTTP and local OCI image layouts."""
