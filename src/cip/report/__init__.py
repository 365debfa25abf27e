"""Renderers: every verdict, summary and finding becomes text or JSON here, and only here."""
