from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.static import serve
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from instances import ops
from messaging.views import media_file

urlpatterns = [
    path("", include("instances.urls")),
    path("", include("messaging.urls")),
    path("", include("journals.urls")),
    path("", include("journals.history_urls")),
    path("", include("groups.urls")),
    path("", include("statuses.urls")),
    path("media/f/<str:token>/<path:filename>", media_file, name="media-file"),
    path("api/v1/emulator/", include("engines.emulator.urls")),
    path("api/v1/webhooks/", include("journals.webhooks_urls")),
    path("engines/cloud/", include("engines.cloud.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("healthz", ops.healthz),
    path("metrics", ops.metrics_view),
    path("admin/", admin.site.urls),
    path("", include("dashboard.urls")),
    # Local media (avatars, uploads). With S3 storage, URLs point at the bucket instead.
    re_path(r"^media/(?P<path>.*)$", serve, {"document_root": settings.MEDIA_ROOT}),
]

# People get branded pages with a way back; API paths keep plain answers.
handler404 = "dashboard.errors.not_found"
handler403 = "dashboard.errors.forbidden"
handler500 = "dashboard.errors.server_error"
