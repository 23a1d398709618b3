"""One module per area of the dashboard; dashboard/urls.py maps them."""
