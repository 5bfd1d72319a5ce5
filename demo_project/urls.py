from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import path

urlpatterns = [path("admin/", admin.site.urls)]
# Daphne serves no static files: let Django serve the admin's CSS/JS while DEBUG is on.
urlpatterns += staticfiles_urlpatterns()
