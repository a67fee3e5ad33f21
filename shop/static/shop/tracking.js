/* Placeholder: the tracking engineer owns this file (impressions and clicks of .product-card). */
