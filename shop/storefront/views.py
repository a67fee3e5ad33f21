"""Storefront pages. Thin: they parse input with forms, call selectors and services (with the browser
as plain values: its session, or tracking's Visitor from ``visitor_from_request``), render templates."""
from functools import lru_cache

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from catalog import cache as catalog_cache
from catalog import selectors as catalog_selectors
from catalog.images import product_placeholder_svg
from catalog.models import Product
from catalog.pagination import CachedCountPaginator
from tracking.http import visitor_from_request

from . import selectors, services
from .forms import PAGE_SIZES, SORT_LABELS, CheckoutForm, ProductFilterForm, QuantityForm

IMAGE_MAX_AGE = 86400


@require_GET
def index(request):
    params = ProductFilterForm(request.GET).values()
    category = catalog_selectors.category_resolve(params["category"]) if params["category"] else None
    if params["category"] and category is None:
        raise Http404("No such category")
    products = catalog_selectors.product_list(
        category_id=category.id if category else None, search=params["q"], ordering=params["sort"]
    )
    # Cached count and keyset jumps: no COUNT(*) per request, no deep OFFSET scans; get_page clamps bad pages.
    page_obj = CachedCountPaginator(products, params["size"]).get_page(params["page"])
    keep = {k: v for k, v in (("q", params["q"]), ("category", params["category"]), ("sort", params["sort"]))
            if v and not (k == "sort" and v == "id")}
    if params["size"] != 24:
        keep["size"] = params["size"]
    return render(request, "storefront/index.html", {
        "page_obj": page_obj,
        "products": page_obj.object_list,
        "params": params,
        "category": category,
        "category_options": _category_options(category.slug if category else None),
        "page_sizes": PAGE_SIZES,
        "sort_labels": SORT_LABELS,
        "query_base": urlencode(keep),
        "position_offset": (page_obj.number - 1) * params["size"],
    })


def _category_options(selected_slug: str | None):
    # Built once per catalogue version in Python, not a template loop: a real catalogue has hundreds
    # of categories and rendering them per request was most of the grid page's CPU time.
    html = _category_options_html(catalog_cache.version())
    if selected_slug:
        needle = format_html('<option value="{}">', selected_slug)
        html = html.replace(needle, needle[:-1] + " selected>", 1)
    return mark_safe(html)  # noqa: S308 - built by format_html_join from escaped values


@lru_cache(maxsize=4)
def _category_options_html(version: str) -> str:
    return str(format_html_join(
        "", '<option value="{}">{}{}</option>',
        ((c.slug, "\u2013 " * c.depth, c.name) for c in catalog_selectors.category_tree()),
    ))


@require_GET
def product_detail(request, pk):
    product = catalog_selectors.product_get(pk, active_only=False)
    if product is None:
        raise Http404("No such product")
    visitor = visitor_from_request(request)
    services.product_view_record(visitor, product, source=request.GET.get("src", "")[:40])
    visit_uuid = services.visit_uuid_for_visitor(visitor)
    return render(request, "storefront/product.html", {
        "product": product,
        "breadcrumbs": catalog_selectors.category_ancestors(product.category_id),
        "form": QuantityForm(initial={"quantity": 1}),
        "recommended": selectors.recommended_for_you(visit_uuid, product),
        "similar": selectors.similar_items(product, visit_uuid=visit_uuid),
    })


@require_GET
def product_image(request, pk):
    product = get_object_or_404(Product.objects.select_related("category"), pk=pk)
    category = product.category
    svg = product_placeholder_svg(product.name, category.name if category else "", category.slug if category else "")
    response = HttpResponse(svg, content_type="image/svg+xml; charset=utf-8")
    response["Cache-Control"] = f"public, max-age={IMAGE_MAX_AGE}"
    return response


def _cart_page(request, errors=None, status=200, forms_by_product=None):
    lines = selectors.cart_lines(request.session)
    forms_by_product = forms_by_product or {}
    rows = [(line, forms_by_product.get(line.product.pk) or QuantityForm(initial={"quantity": line.quantity}))
            for line in lines]
    return render(request, "storefront/cart.html", {
        "rows": rows, "total": selectors.cart_total(lines), "totals": selectors.cart_totals(lines),
        "errors": errors or [], "cart_count": len(lines),
    }, status=status)


@require_GET
def cart(request):
    return _cart_page(request)


@require_POST
def cart_add(request, pk):
    product = get_object_or_404(Product, pk=pk)
    form = QuantityForm(request.POST)
    if form.is_valid():
        try:
            services.cart_add(visitor_from_request(request), product, form.cleaned_data["quantity"])
        except ValueError as exc:
            messages.error(request, str(exc))
            return redirect("storefront:product", pk=pk)
        messages.success(request, f"Added {product.name} to your cart.")
        return redirect("storefront:cart")
    for error in form.errors.get("quantity", []):
        messages.error(request, error)
    return redirect("storefront:product", pk=pk)


@require_POST
def cart_update(request, pk):
    product = get_object_or_404(Product, pk=pk)
    form = QuantityForm(request.POST)
    if form.is_valid():
        try:
            services.cart_set_quantity(request.session, product, form.cleaned_data["quantity"])
        except ValueError as exc:
            return _cart_page(request, errors=[str(exc)], status=400)
        return redirect("storefront:cart")
    return _cart_page(request, status=400, forms_by_product={pk: form})


@require_POST
def cart_remove(request, pk):
    product = get_object_or_404(Product, pk=pk)
    if services.cart_remove(visitor_from_request(request), product):
        messages.success(request, f"Removed {product.name} from your cart.")
    return redirect("storefront:cart")


@require_http_methods(["GET", "POST"])
def checkout(request):
    lines = selectors.cart_lines(request.session)
    if not lines and request.method == "GET":
        return redirect("storefront:cart")
    form = CheckoutForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                order, _ = services.order_place(visitor_from_request(request), **form.cleaned_data)
            except services.CheckoutError as exc:
                for error in exc.errors:
                    form.add_error(None, error)
            else:
                return redirect(reverse("storefront:order", args=[order.pk]) + "?placed=1")
        status = 400
    return render(request, "storefront/checkout.html", {
        "form": form, "lines": lines, "total": selectors.cart_total(lines), "totals": selectors.cart_totals(lines),
        "cart_count": len(lines),
    }, status=status)


@require_GET
def orders(request):
    return render(request, "storefront/orders.html", {
        "orders": selectors.orders_for_owner(selectors.session_owner(request.session)),
    })


@require_GET
def order_detail(request, pk):
    order = selectors.order_for_owner(selectors.session_owner(request.session), pk)
    if order is None:
        raise Http404("No such order")
    return render(request, "storefront/order.html", {"order": order, "placed": request.GET.get("placed") == "1"})
