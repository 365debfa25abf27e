"""Signing promoted images: keys and keyless identities, cosign's formats, verification."""
