"""The storefront: product grid, product pages, cart, checkout and orders."""
