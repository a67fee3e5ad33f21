"""Staff-only access to the model registry; actions need their custom permission."""
from rest_framework.permissions import BasePermission


class IsStaffWithModelPermission(BasePermission):
    """Staff may read; ``required_perm`` on the view (e.g. ``recommendations.activate_modelversion``)
    guards the action that changes something."""

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated and user.is_staff):
            return False
        perm = getattr(view, "required_perm", None)
        if request.method in ("GET", "HEAD", "OPTIONS") or perm is None:
            return True
        return user.has_perm(perm)
