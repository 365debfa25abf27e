"""The HTTP stack below registry clients: sessions, auth, credentials, retry, rate limits."""
