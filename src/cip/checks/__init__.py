"""Pre-merge checks of manifest changes (roadmap: checks). Nothing here yet."""
