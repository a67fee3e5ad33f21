"""Template tags of tracking: the served-item token of a recommended product card."""
from django import template

from ..attribution import served_token as _served_token

register = template.Library()


@register.simple_tag
def served_token(visit_id, model_version, product_id, source) -> str:
    """``{% served_token tracking_visit_id items.model_version p.id source as token %}``: the token
    tracking.js sends back with the card's impression and click. Bound to ``tracking_visit_id``,
    the visit the page's events are sent for (window.SHOP.visitId); "" without one."""
    return _served_token(visit_id, model_version or "", product_id, source)
