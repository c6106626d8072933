"""Identifiers of images, as MetaCLIP defines them."""

import hashlib


def image_uuid(url: str) -> str:
    """MetaCLIP's image id: the first 24 hex digits of SHA-224 of the image URL string."""
    return hashlib.sha224(url.encode("utf-8")).hexdigest()[:24]
