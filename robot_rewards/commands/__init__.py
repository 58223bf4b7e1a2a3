"""The bodies of CLI commands: each takes its config dataclass and returns a metrics dict."""
