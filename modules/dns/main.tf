locals {
  colors = toset(["blue", "green"])
  alias  = var.ttl == null
}

# Two weighted records for one name, one per color. A switch, a canary step or a rollback is a
# change of var.weights and nothing else, as with the listener. Resolvers pick a record per query
# in proportion to the weights and cache the answer for the TTL: an alias record to a load balancer
# is answered with AWS's fixed 60 s, a CNAME with var.ttl.
resource "aws_route53_record" "color" {
  for_each = local.colors

  zone_id        = var.zone_id
  name           = var.record
  type           = local.alias ? "A" : "CNAME"
  set_identifier = each.key
  ttl            = local.alias ? null : var.ttl
  records        = local.alias ? null : [var.load_balancers[each.key].dns_name]

  weighted_routing_policy {
    weight = var.weights[each.key]
  }

  dynamic "alias" {
    for_each = local.alias ? [var.load_balancers[each.key]] : []

    content {
      name                   = alias.value.dns_name
      zone_id                = alias.value.zone_id
      evaluate_target_health = true
    }
  }
}
