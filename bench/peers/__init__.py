"""Peer servers for ``bench.fanout``: what a user might pick instead of classroom."""
