"""Stage 2, rendering: Jinja2 templates → one Terraform root module per layer; color parity."""
