"""The auditor of production registries (roadmap: audit). Nothing here yet."""
