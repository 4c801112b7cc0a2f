"""What operators watch: health checks, Prometheus metrics and per-request observation."""
