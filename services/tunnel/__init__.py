"""The tunnel: `hearth relay` on a public server, and the agent at home that dials out to it."""
