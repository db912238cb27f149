from instances.urls import method
from journals import api, forwarding_api

urlpatterns = [
    method(api.ReceiveNotification),
    method(api.DeleteNotification, extra="receipt_id"),
    method(api.DeleteNotification),
    method(api.DeleteNotification, trailing_slash=True),
    method(api.GetWebhooksCount),
    method(api.ClearWebhooksQueue),
    method(api.DownloadFile),
    method(forwarding_api.ForwardMessages),
]
