"""The JSON web API daemon: accounts and app passwords under /api/v1, its OpenAPI document at /api/openapi.json."""
