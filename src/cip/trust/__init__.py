"""Signing and provenance of promoted images (roadmap: trust). Nothing here yet."""
