"""`Subscriber` and `AsyncSubscriber` and the core they share. Imports only `errors` and `wire` of ours:
the client runs without the server's dependencies."""
