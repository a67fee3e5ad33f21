"""The storefront: product grid, product pages, cart, checkout and orders."""
from django.urls import path

from . import views

app_name = "storefront"
urlpatterns = [
    path("", views.index, name="index"),
    path("products/<int:pk>/", views.product_detail, name="product"),
    path("products/<int:pk>/image.svg", views.product_image, name="product-image"),
    path("cart/", views.cart, name="cart"),
    path("cart/add/<int:pk>/", views.cart_add, name="cart-add"),
    path("cart/update/<int:pk>/", views.cart_update, name="cart-update"),
    path("cart/remove/<int:pk>/", views.cart_remove, name="cart-remove"),
    path("checkout/", views.checkout, name="checkout"),
    path("orders/", views.orders, name="orders"),
    path("orders/<int:pk>/", views.order_detail, name="order"),
]
