from django.apps import AppConfig


class ShopConfig(AppConfig):
    name = "shop"
    verbose_name = "Shop (storefront and orders)"

    def ready(self):
        # why: login_guard imports the admin and auth forms, which need the app registry loaded
        from .login_guard import admin_site_guard

        admin_site_guard()  # the admin sign-in form with the lockout (shop/login_guard.py)
