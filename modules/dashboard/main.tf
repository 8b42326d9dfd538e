################################################################################
# One dashboard per environment: both colors on the same graphs, in the same hue on every graph
################################################################################

locals {
  colors    = ["blue", "green"]
  namespace = "AWS/ApplicationELB"

  # A color keeps its hue on every graph, so a reader follows one color down the page.
  hue = { blue = "#1f77b4", green = "#2ca02c" }

  # The CloudWatch dimensions of a color's traffic: its target group on the load balancer in front of
  # it (the shared one, or the color's own in DNS mode).
  dimensions = {
    for color in local.colors : color => [
      "LoadBalancer", var.colors[color].load_balancer_arn_suffix,
      "TargetGroup", var.colors[color].target_group_arn_suffix,
    ]
  }

  # One line per color for each graphed metric, with the statistic that answers the graph's question.
  # Healthy hosts: the fewest seen in a period, since a dip is what a gate and an alarm care about.
  statistics = {
    RequestCount              = "Sum"
    HTTPCode_Target_5XX_Count = "Sum"
    TargetResponseTime        = "p99"
    HealthyHostCount          = "Minimum"
  }
  per_color = {
    for metric, stat in local.statistics : metric => [
      for color in local.colors : concat(
        [local.namespace, metric],
        local.dimensions[color],
        [{ label = color, color = local.hue[color], stat = stat }],
      )
    ]
  }

  # The traffic split. The listener weights are Terraform variables of the traffic layer, not
  # metrics, so the graph shows what they cause: each color's share of the requests, as two stacked
  # percentages that always fill 0-100. The boundary between the bands reads directly as the split a
  # switch steps through (10/50/100), at any load; a stacked graph of raw request counts would make the
  # reader compare band heights that also move with the load (the Requests graph beside it shows the
  # volume). The total is the SUM over both colors, which has a value whenever either color served
  # requests; FILL gives a color without requests in a period 0 %, so a steady 100/0 state shows one
  # full band, and a period without any request shows nothing rather than a made-up split.
  split = concat(
    [
      for color in local.colors : [{
        id         = "${color}_share"
        expression = "100 * FILL(${color}, 0) / total"
        label      = "${color} %"
        color      = local.hue[color]
      }]
    ],
    [[{ id = "total", expression = "SUM([blue, green])", label = "requests (both colors)", visible = false }]],
    [
      for color in local.colors : concat(
        [local.namespace, "RequestCount"],
        local.dimensions[color],
        [{ id = color, stat = "Sum", visible = false }],
      )
    ],
  )

  graph = {
    region = var.region
    period = var.period_seconds
    view   = "timeSeries"
  }

  # The graphs beside and below the split, two to a row: the same shape, one color per line.
  graphs = [
    { title = "Requests (sum per period)", metrics = local.per_color["RequestCount"], axis = { min = 0 } },
    { title = "Target 5xx (sum per period)", metrics = local.per_color["HTTPCode_Target_5XX_Count"], axis = { min = 0 } },
    {
      title   = "Response time p99 (TargetResponseTime)"
      metrics = local.per_color["TargetResponseTime"]
      axis    = { min = 0, label = "seconds", showUnits = false }
    },
    { title = "Healthy hosts (fewest per period)", metrics = local.per_color["HealthyHostCount"], axis = { min = 0 } },
  ]

  widgets = concat([
    {
      type   = "text"
      x      = 0
      y      = 0
      width  = 24
      height = 2
      properties = {
        markdown = "## ${var.name}: blue and green\nEvery graph shows both colors, each in its own hue, on its own target group. The split is what the listener weights cause; `bgtool status` shows the weights themselves and which color is live."
      }
    },
    {
      type   = "metric"
      x      = 0
      y      = 2
      width  = 12
      height = 6
      properties = merge(local.graph, {
        title   = "Traffic split (% of requests per color)"
        stacked = true
        metrics = local.split
        yAxis   = { left = { min = 0, max = 100, label = "%", showUnits = false } }
      })
    },
    ], [
    for i, g in local.graphs : {
      type   = "metric"
      x      = ((i + 1) % 2) * 12
      y      = 2 + 6 * floor((i + 1) / 2)
      width  = 12
      height = 6
      properties = merge(local.graph, {
        title   = g.title
        stacked = false
        metrics = g.metrics
        yAxis   = { left = g.axis }
      })
    }
  ])
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name
  dashboard_body = jsonencode({ widgets = local.widgets })
}
