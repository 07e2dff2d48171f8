"""The app page's kernel manager (loaded by Voila, never by the CLI): at most ``max_kernels``
kernels at once; past that a page load is refused with 503 instead of starting another one."""

from __future__ import annotations

from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from tornado import web
from traitlets import Integer


class CappedKernelManager(AsyncMappingKernelManager):
    max_kernels = Integer(3, config=True, help="most kernels running at once (each open page is one)")

    async def start_kernel(self, *args, **kwargs):
        if kwargs.get("kernel_id") is None and len(self.list_kernel_ids()) >= self.max_kernels:
            raise web.HTTPError(
                503, f"{self.max_kernels} app pages are open already; close one (or wait for an idle one to stop)"
            )
        return await super().start_kernel(*args, **kwargs)


__all__ = ["CappedKernelManager"]
