"""Developer tools of the project (not shipped with the service)."""
