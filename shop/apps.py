from django.apps import AppConfig


class ShopConfig(AppConfig):
    name = "shop"
    verbose_name = "Shop (storefront and orders)"

    def ready(self):
        # why: login_guard imports the admin and auth forms, which need the app registry loaded
        from .login_guard import admin_site_guard

        admin_site_guard()  # the admin sign-in form with the lockout (shop/login_guard.py)
        # why: app-loading order: the recommendations app and the storefront's models load after ready() starts
        from recommendations import experimenting

        from .storefront.selectors import orders_of_visits  # why: the storefront's models need the app registry

        experimenting.order_source_register(orders_of_visits)  # experiments count orders (never import the shop)
