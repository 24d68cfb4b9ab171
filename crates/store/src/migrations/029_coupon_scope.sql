-- A coupon's own scope (the lines it covers), as the pricing scope's JSON, when it was
-- issued narrower than its template: a journey's cart coupon covers the products left
-- in that customer's cart. NULL: the template's scope.
ALTER TABLE coupons ADD COLUMN scope TEXT;
