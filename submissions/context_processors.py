from submissions.chamelaion import is_sandbox_mode
from submissions.models import Problem


def dubdash(request):
    user = getattr(request, "user", None)
    is_staff = bool(user and user.is_authenticated and user.is_staff)
    return {
        "sandbox_mode": is_sandbox_mode(),
        # Only administrators can act on these, so only they are shown them (one small query per page).
        "problems": list(Problem.objects.all()) if is_staff else [],
    }
