"""The platform layer: health, metrics, realtime push, sockets, process lifecycle hooks, the Redis
cache and the request plumbing. Imports the ground floor only; apps register into it."""
