"""Report rendering: papermill notebooks → self-contained HTML, and the index page."""
