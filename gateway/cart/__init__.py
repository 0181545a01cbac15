"""What a customer keeps before ordering: the cart (and its checkout) and the wishlist."""
