"""Promotion: reading what registries hold, copying images, running the phases of a run."""
