def health_view(request):
    raise RuntimeError("written next")
