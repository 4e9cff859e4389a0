"""The FastAPI front: routes, auth, streams, and the services they call."""
