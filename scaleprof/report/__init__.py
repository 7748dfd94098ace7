"""Rendering only: tables, plots, Markdown and HTML reports, the check's verdict table and step summary.

It reads result objects or their JSON; it runs, counts and decides nothing (ARCHITECTURE.md).
"""
