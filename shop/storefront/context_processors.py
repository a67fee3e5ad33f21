"""Template context for every storefront page: the header's cart count, read from the database cart."""
from functools import partial

from . import selectors


def cart(request):
    if not hasattr(request, "session"):
        return {"cart_count": 0}
    # A callable: the template calls it only where it shows the count (one small query, none
    # without a cart); the cart page passes the count of the lines it already has.
    return {"cart_count": partial(selectors.cart_count, request.session)}
