"""The web shell: pages, forms, login, and the WebSocket endpoint."""
