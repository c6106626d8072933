"""What a finished root says about itself: the report (build, html, plots), the public summary, plan and status."""
