variable "zone_id" {
  description = "ID of the hosted zone that holds the record."
  type        = string
  nullable    = false
}

variable "record" {
  description = "The name clients resolve (app.example.com); inside the zone."
  type        = string
  nullable    = false
}

variable "ttl" {
  description = "null: alias records to the load balancers (TTL fixed at 60 s by AWS); a number: CNAME records with this TTL."
  type        = number
  default     = null

  validation {
    condition     = var.ttl == null ? true : (var.ttl >= 0 && floor(var.ttl) == var.ttl)
    error_message = "The ttl must be null or a whole number of seconds."
  }
}

variable "load_balancers" {
  description = "Map of color to its load balancer's dns_name and zone_id."
  type = map(object({
    dns_name = string
    zone_id  = string
  }))
  nullable = false

  validation {
    condition     = length(setsubtract(["blue", "green"], keys(var.load_balancers))) == 0
    error_message = "The load_balancers map needs both blue and green."
  }
}

variable "weights" {
  description = "Map of color to its Route 53 weight (percentages summing to 100)."
  type        = map(number)
  nullable    = false

  validation {
    condition     = var.weights["blue"] + var.weights["green"] == 100 && alltrue([for w in values(var.weights) : w >= 0 && w <= 100 && floor(w) == w])
    error_message = "The weights must be whole percentages 0..100 for blue and green, summing to 100."
  }
}
