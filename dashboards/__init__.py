"""plotly views (AGP, time in range, daily summaries, meal pairs, pre-visit page).

Empty until the dashboards issue: nothing here pretends to work yet.
"""
