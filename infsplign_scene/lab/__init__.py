"""The lab: what builds, trains and measures the library's embedded models and studies.

The library (`infsplign_scene`) never imports from here; the lab imports the library.
"""
