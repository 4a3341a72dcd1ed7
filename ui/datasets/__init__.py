"""The Datasets page: the dataset manager (:mod:`ui.datasets.manager`) and its dialogs.

Modules are imported when used, not here: the main window imports
:mod:`ui.datasets.manager` on the first visit to the page, and the page
imports the import wizard, export, action and stats dialogs when opened.
"""
