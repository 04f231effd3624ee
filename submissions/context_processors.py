from submissions.chamelaion import is_sandbox_mode


def dubdash(request):
    return {"sandbox_mode": is_sandbox_mode()}
