"""HTTP serving: a Starlette app with a JSON API and a draw-a-digit page."""
