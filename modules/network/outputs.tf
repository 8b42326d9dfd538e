output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr" {
  description = "CIDR block of the VPC."
  value       = aws_vpc.this.cidr_block
}

output "subnet_ids" {
  description = "IDs of the public subnets, in the order of var.public_subnets (same as public_subnet_ids; kept for callers of earlier versions)."
  value       = [for s in var.public_subnets : aws_subnet.public[s.az].id]
}

output "public_subnet_ids" {
  description = "IDs of the public subnets (the load balancer's), in the order of var.public_subnets."
  value       = [for s in var.public_subnets : aws_subnet.public[s.az].id]
}

output "private_subnet_ids" {
  description = "IDs of the private subnets, in the order of var.private_subnets (empty without them)."
  value       = [for s in var.private_subnets : aws_subnet.private[s.az].id]
}

output "instance_subnet_ids" {
  description = "Where the instances run: the private subnets when there are any, else the public ones."
  value       = length(var.private_subnets) > 0 ? [for s in var.private_subnets : aws_subnet.private[s.az].id] : [for s in var.public_subnets : aws_subnet.public[s.az].id]
}

output "nat_gateway_ids" {
  description = "Map of availability zone to NAT gateway ID (empty without private subnets or with nat_gateway = \"none\")."
  value       = { for az, nat in aws_nat_gateway.this : az => nat.id }
}

output "internet_gateway_id" {
  description = "ID of the internet gateway."
  value       = aws_internet_gateway.this.id
}

output "route_table_id" {
  description = "ID of the public route table."
  value       = aws_route_table.public.id
}
