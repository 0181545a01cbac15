"""Orders: placing, listing, reading, cancelling and following them live."""
